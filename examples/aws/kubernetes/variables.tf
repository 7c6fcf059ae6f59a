variable "cluster_name" {
  description = "Unique cluster name; prefixes every AWS resource and DNS name."
  type        = string
}

variable "dns_zone" {
  description = "Route 53 zone for the apiserver and etcd names, e.g. `aws.example.com`."
  type        = string
}

variable "dns_zone_id" {
  description = "ID of the Route 53 zone."
  type        = string
}

variable "ami" {
  description = "AMI of the hosts (Fedora CoreOS or Flatcar, matching `host_os`); null: the newest of `os_stream` in the region, looked up while planning (needs AWS credentials)."
  type        = string
  default     = null
}

variable "os_stream" {
  description = "The OS stream whose newest AMI the hosts boot when `ami` is null: Fedora CoreOS `stable`, `testing` or `next`; Flatcar `stable`, `beta` or `alpha`."
  type        = string
  default     = "stable"
  validation {
    condition     = contains(["stable", "testing", "next", "beta", "alpha"], var.os_stream)
    error_message = "os_stream must be stable, testing or next (Fedora CoreOS), or stable, beta or alpha (Flatcar)."
  }
}

variable "host_os" {
  description = "`fedora-coreos` or `flatcar`: how the hosts start the kubelet and etcd."
  type        = string
  default     = "fedora-coreos"
  validation {
    condition     = contains(["fedora-coreos", "flatcar"], var.host_os)
    error_message = "host_os must be \"fedora-coreos\" or \"flatcar\"."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes version of the control plane (vMAJOR.MINOR.PATCH); null for the provider's default."
  type        = string
  default     = null
}

variable "availability_zones" {
  description = "Availability zones, one public subnet each. Null: every zone of the region that is available (looked up while planning, which needs AWS credentials)."
  type        = list(string)
  default     = null
}

variable "networking" {
  description = "Pod network: `flannel`, `calico` or `cilium`. The security groups open its ports between hosts."
  type        = string
  default     = "flannel"
  validation {
    condition     = contains(["flannel", "calico", "cilium"], var.networking)
    error_message = "networking must be \"flannel\", \"calico\" or \"cilium\"."
  }
}

variable "pod_cidr" {
  description = "Pod network range; must not overlap `service_cidr` or `host_cidr`."
  type        = string
  default     = "10.2.0.0/16"
}

variable "service_cidr" {
  description = "Service network range; its first address is the `kubernetes` Service, its 10th the cluster DNS."
  type        = string
  default     = "10.3.0.0/16"
}

variable "arch" {
  description = "`amd64` or `arm64` (Graviton): the AMIs looked up, and the instance types you choose (`controller_type`, `worker_type`, e.g. `t4g.medium`). The Kubernetes, etcd, kubelet and pod network images are multi-arch; this provider's releases publish its node agent for amd64 only, so arm64 needs one of your own in `container_images.selfhosted_agent`."
  type        = string
  default     = "amd64"
  validation {
    condition     = contains(["amd64", "arm64"], var.arch)
    error_message = "arch must be \"amd64\" or \"arm64\"."
  }
}

variable "container_images" {
  description = "Images by component, passed to `selfhosted_cluster_assets` (a mirror, a pinned digest, your own arm64 node agent as `selfhosted_agent`)."
  type        = map(string)
  default     = {}
}

variable "controller_count" {
  description = "Number of controllers (etcd members): 1, 3 or 5."
  type        = number
  default     = 3
}

variable "controller_type" {
  description = "Controller instance type."
  type        = string
  default     = "t3.medium"
}

variable "worker_count" {
  description = "Desired number of workers in the autoscaling group."
  type        = number
  default     = 2
}

variable "worker_type" {
  description = "Worker instance type."
  type        = string
  default     = "t3.medium"
}

variable "disk_size" {
  description = "Root volume size in GiB, of controllers and workers unless set apart below."
  type        = number
  default     = 30
}

variable "controller_disk_size" {
  description = "Controllers' root volume size in GiB; null: `disk_size`."
  type        = number
  default     = null
}

variable "worker_disk_size" {
  description = "Workers' root volume size in GiB; null: `disk_size`."
  type        = number
  default     = null
}

variable "worker_node_labels" {
  description = "Labels of the workers' nodes, `key=value` (see the workers module's `node_labels` for which keys a kubelet may set)."
  type        = list(string)
  default     = []
}

variable "worker_node_taints" {
  description = "Taints of the workers' nodes, `key=value:Effect`."
  type        = list(string)
  default     = []
}

variable "controller_snippets" {
  description = "Ignition configs (JSON, spec 3.x) merged into the controllers' user data after the provider's, at first boot: files, units, users of your own. Butane snippets as typhoon takes them: render each first (`butane --strict`, or the `ct_config` data source of poseidon/ct and its `rendered`). A running controller keeps its user data: a change reaches controllers made after it."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for s in var.controller_snippets : can(regex("^3\\.[0-4]\\.0$", jsondecode(s).ignition.version))])
    error_message = "Each of controller_snippets is an Ignition config of spec 3.x: JSON with ignition.version, at most \"3.4.0\" on Fedora CoreOS and \"3.3.0\" on Flatcar. Render Butane YAML with `butane --strict` or poseidon/ct's ct_config first."
  }
}

variable "worker_snippets" {
  description = "Ignition configs (JSON, spec 3.x) merged into the workers' user data after the provider's, at first boot: files, units, users of your own. Butane snippets as typhoon takes them: render each first (`butane --strict`, or the `ct_config` data source of poseidon/ct and its `rendered`)."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for s in var.worker_snippets : can(regex("^3\\.[0-4]\\.0$", jsondecode(s).ignition.version))])
    error_message = "Each of worker_snippets is an Ignition config of spec 3.x: JSON with ignition.version, at most \"3.4.0\" on Fedora CoreOS and \"3.3.0\" on Flatcar. Render Butane YAML with `butane --strict` or poseidon/ct's ct_config first."
  }
}

variable "worker_price" {
  description = "Highest hourly price of spot workers, in USD (e.g. \"0.02\"); null: on-demand workers."
  type        = string
  default     = null
}

variable "host_cidr" {
  description = "CIDR of the VPC."
  type        = string
  default     = "10.0.0.0/16"
}

variable "ssh_cidrs" {
  description = "Networks allowed to reach the hosts over SSH (the machine running terraform must be one)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "ssh_authorized_key" {
  description = "Public key the hosts let in as `core`."
  type        = string
}

variable "ssh_authorized_keys" {
  description = "More public keys the provider keeps letting in as `core` on the controllers and the listed workers, beside `ssh_authorized_key`. Together they are the whole set: a key a host got elsewhere (an EC2 key pair, a first key left by hand) is removed at the next apply. To rotate the SSH key: list the new key here and apply; then make it `ssh_authorized_key` (and `ssh_private_key` its private half), empty this list, and apply again (docs/resources/bootstrap.md, \"Rotating the SSH key\")."
  type        = list(string)
  default     = []
}

variable "ssh_private_key" {
  description = "Private key of `ssh_authorized_key`, for the pivot over SSH. Passed write-only: never stored in state."
  type        = string
  sensitive   = true
  ephemeral   = true
}

variable "etcd_snapshot_dir" {
  description = "Folder on the machine running terraform that also keeps the etcd snapshot each update takes before it changes anything (made 0700; it holds every Secret of the cluster). Null: the snapshots stay on the controller that took them, the newest 3."
  type        = string
  default     = null
}
