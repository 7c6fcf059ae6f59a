variable "name" {
  description = "Name of the worker group (instances, launch template, autoscaling group)."
  type        = string
}

variable "ami" {
  description = "AMI of the workers."
  type        = string
}

variable "instance_type" {
  description = "Worker instance type."
  type        = string
}

variable "disk_size" {
  description = "Root volume size in GiB."
  type        = number
}

variable "spot_price" {
  description = "Highest hourly price of spot workers, in USD; null: on-demand."
  type        = string
  default     = null
}

variable "desired_count" {
  description = "Workers the group keeps running."
  type        = number
}

variable "subnet_ids" {
  description = "Subnets the group spreads over."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the workers."
  type        = list(string)
}

variable "ignition_version" {
  description = "Ignition spec version of the OS (3.4.0 Fedora CoreOS, 3.3.0 Flatcar)."
  type        = string
}

variable "ssh_authorized_key" {
  description = "Public key the workers let in as `core` (for debugging; joining needs no SSH)."
  type        = string
}

variable "joining_ignition" {
  description = "`selfhosted_cluster_assets.<name>.joining_worker_ignition`: the worker contract with the bootstrap kubeconfig."
  type        = string
  sensitive   = true
}

variable "node_labels" {
  description = "Labels the workers' kubelets register their nodes with, `key=value`. A kubelet may set no label under kubernetes.io or k8s.io but `node.kubernetes.io/…` and `kubelet.kubernetes.io/…` (it refuses to start otherwise); roles such as node-role.kubernetes.io/… are set through the API."
  type        = list(string)
  default     = []
  validation {
    condition = alltrue([
      for l in var.node_labels : can(regex("^[^=]+=", l)) && (
        !can(regex("(^|\\.)(kubernetes\\.io|k8s\\.io)/", split("=", l)[0])) ||
        can(regex("(^|\\.)(node|kubelet)\\.kubernetes\\.io/", split("=", l)[0]))
      )
    ])
    error_message = "Each node label is key=value, and a kubelet may set no key under kubernetes.io or k8s.io but node.kubernetes.io/... and kubelet.kubernetes.io/...: set roles (node-role.kubernetes.io/...) through the API instead."
  }
}

variable "node_taints" {
  description = "Taints the workers' kubelets register their nodes with, `key=value:Effect` (e.g. `dedicated=gpu:NoSchedule`)."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for t in var.node_taints : can(regex("^[^=:]+(=[^:]*)?:(NoSchedule|PreferNoSchedule|NoExecute)$", t))])
    error_message = "Each node taint is key=value:Effect or key:Effect, with Effect NoSchedule, PreferNoSchedule or NoExecute."
  }
}

variable "snippets" {
  description = "Ignition configs (JSON, spec 3.x) merged into the pool's user data after the provider's (Butane rendered first: `butane --strict`, or poseidon/ct's `ct_config`)."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for s in var.snippets : can(regex("^3\\.[0-4]\\.0$", jsondecode(s).ignition.version))])
    error_message = "Each snippet is an Ignition config of spec 3.x: JSON with ignition.version, at most \"3.4.0\" on Fedora CoreOS and \"3.3.0\" on Flatcar. Render Butane YAML with `butane --strict` or poseidon/ct's ct_config first."
  }
}

variable "target_group_arns" {
  description = "Load balancer target groups the workers join (e.g. for ingress)."
  type        = list(string)
  default     = []
}
