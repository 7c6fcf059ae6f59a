variable "cluster_name" {
  description = "Unique cluster name; prefixes every DigitalOcean resource, droplet and DNS name."
  type        = string
  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$", var.cluster_name))
    error_message = "cluster_name is lowercase letters, digits and '-', starting with a letter, at most 40 characters: it starts every droplet's (node's) name."
  }
}

variable "region" {
  description = "DigitalOcean region of the VPC and the droplets (e.g. `nyc3`, `fra1`, `sfo3`); the custom image must be available there."
  type        = string
  validation {
    condition     = can(regex("^[a-z]+[0-9]+$", var.region))
    error_message = "region is a DigitalOcean region slug such as \"nyc3\" or \"fra1\"."
  }
}

variable "dns_zone" {
  description = "DigitalOcean domain the cluster's names go in, e.g. `do.example.com` (a domain of the account, delegated to DigitalOcean's name servers)."
  type        = string
  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]*[a-z0-9])?\\.)+[a-z]{2,}$", var.dns_zone))
    error_message = "dns_zone is a lowercase domain name without a trailing dot, e.g. \"do.example.com\"."
  }
}

variable "os_image" {
  description = "ID of the Fedora CoreOS (or Flatcar) custom image, e.g. from `doctl compute image list-user` (docs/guides/digitalocean.md shows how to make one). Matches `host_os`."
  type        = string
  validation {
    condition     = length(trimspace(var.os_image)) > 0
    error_message = "os_image is the ID of a custom image."
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
  description = "Kubernetes version of the control plane and kubelets (vMAJOR.MINOR.PATCH); null for the provider's default."
  type        = string
  default     = null
}

variable "networking" {
  description = "Pod network: `flannel`, `calico` or `cilium`. The firewalls open its ports between the droplets."
  type        = string
  default     = "flannel"
  validation {
    condition     = contains(["flannel", "calico", "cilium"], var.networking)
    error_message = "networking must be \"flannel\", \"calico\" or \"cilium\"."
  }
}

variable "pod_cidr" {
  description = "Pod network range; must not overlap `service_cidr` or the VPC's range."
  type        = string
  default     = "10.2.0.0/16"
  validation {
    condition     = can(cidrhost(var.pod_cidr, 0))
    error_message = "pod_cidr is a CIDR block, e.g. \"10.2.0.0/16\"."
  }
}

variable "service_cidr" {
  description = "Service network range; its first address is the `kubernetes` Service, its 10th the cluster DNS."
  type        = string
  default     = "10.3.0.0/16"
  validation {
    condition     = can(cidrhost(var.service_cidr, 0))
    error_message = "service_cidr is a CIDR block, e.g. \"10.3.0.0/16\"."
  }
}

variable "host_cidr" {
  description = "IP range of the cluster's VPC (a private range, /16 to /28, overlapping no other VPC of the account, nor `pod_cidr` or `service_cidr`). Null: DigitalOcean picks a free one."
  type        = string
  default     = null
  validation {
    condition     = var.host_cidr == null || can(cidrhost(var.host_cidr, 0))
    error_message = "host_cidr is null or a CIDR block, e.g. \"10.10.0.0/20\"."
  }
}

variable "controller_count" {
  description = "Number of controllers (etcd members): 1, 3 or 5."
  type        = number
  default     = 3
  validation {
    condition     = contains([1, 3, 5], var.controller_count)
    error_message = "controller_count is 1, 3 or 5 (an etcd cluster of an even size tolerates no more failures than one smaller)."
  }
}

variable "controller_type" {
  description = "Droplet size of the controllers (etcd, the apiserver and the rest of the control plane): 2 vCPUs and 4 GB or more."
  type        = string
  default     = "s-2vcpu-4gb"
}

variable "worker_count" {
  description = "Number of worker droplets."
  type        = number
  default     = 2
  validation {
    condition     = var.worker_count >= 0 && floor(var.worker_count) == var.worker_count
    error_message = "worker_count is a whole number, 0 or more."
  }
}

variable "worker_type" {
  description = "Droplet size of the workers."
  type        = string
  default     = "s-2vcpu-4gb"
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

variable "extra_workers" {
  description = "Workers of pools made outside this module (the workers module's `hosts`), reached over SSH by the same `selfhosted_bootstrap` as the module's own."
  type        = list(object({ name = string, address = string }))
  default     = []
}

variable "apiserver_dns_ttl" {
  description = "TTL in seconds of the apiserver's round-robin A records (30 at least, DigitalOcean's minimum): how long resolvers may keep a replaced or removed controller's address."
  type        = number
  default     = 60
  validation {
    condition     = var.apiserver_dns_ttl >= 30
    error_message = "apiserver_dns_ttl is 30 seconds or more (DigitalOcean's minimum)."
  }
}

variable "apiserver_cidrs" {
  description = "Networks allowed to reach the apiservers on 6443 (the droplets of the cluster always are)."
  type        = list(string)
  default     = ["0.0.0.0/0", "::/0"]
  validation {
    condition     = length(var.apiserver_cidrs) > 0 && alltrue([for c in var.apiserver_cidrs : can(cidrhost(c, 0))])
    error_message = "apiserver_cidrs is a non-empty list of CIDR blocks."
  }
}

variable "ssh_cidrs" {
  description = "Networks allowed to reach the droplets over SSH (the machine running terraform must be one)."
  type        = list(string)
  default     = ["0.0.0.0/0", "::/0"]
  validation {
    condition     = length(var.ssh_cidrs) > 0 && alltrue([for c in var.ssh_cidrs : can(cidrhost(c, 0))])
    error_message = "ssh_cidrs is a non-empty list of CIDR blocks."
  }
}

variable "nodeport_cidrs" {
  description = "Networks allowed to reach NodePort Services (TCP and UDP 30000-32767) on the workers; empty: none."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for c in var.nodeport_cidrs : can(cidrhost(c, 0))])
    error_message = "nodeport_cidrs is a list of CIDR blocks."
  }
}

variable "ssh_authorized_key" {
  description = "Public key the droplets let in as `core`."
  type        = string
}

variable "ssh_fingerprints" {
  description = "Fingerprints (or IDs) of SSH keys already in the DigitalOcean account, given to the droplets. Empty: the module adds `ssh_authorized_key` to the account (which fails if that key is there already: then name it here)."
  type        = list(string)
  default     = []
}

variable "ssh_authorized_keys" {
  description = "More public keys the provider keeps letting in as `core` on the controllers and the listed workers, beside `ssh_authorized_key`. Together they are the whole set: a key a host got elsewhere (an account key of `ssh_fingerprints` that is not `ssh_authorized_key`) is removed at the next apply. To rotate the SSH key: list the new key here and apply; then make it `ssh_authorized_key` (and `ssh_private_key` its private half), empty this list, and apply again (docs/resources/bootstrap.md, \"Rotating the SSH key\")."
  type        = list(string)
  default     = []
}

variable "ssh_private_key" {
  description = "Private key of `ssh_authorized_key`, for the pivot over SSH. Passed write-only: never stored in state."
  type        = string
  sensitive   = true
  ephemeral   = true
}

variable "ssh_host_keys" {
  description = "Pinned SSH host keys by droplet name (a known_hosts line, a public key or a `SHA256:` fingerprint). Unpinned droplets' keys are learned on first use; a droplet replaced under the same name has a new key, which must be pinned here."
  type        = map(string)
  default     = {}
}

variable "etcd_snapshot_dir" {
  description = "Folder on the machine running terraform that also keeps the etcd snapshot each update takes before it changes anything (made 0700; it holds every Secret of the cluster). Null: the snapshots stay on the controller that took them, the newest 3."
  type        = string
  default     = null
}
