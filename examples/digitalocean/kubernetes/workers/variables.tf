variable "name" {
  description = "Prefix of the workers' droplet names (`<name>-0`, `<name>-1`, …), which are their host and node names: lowercase letters, digits and `-`."
  type        = string
  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,50}[a-z0-9])?$", var.name))
    error_message = "name is lowercase letters, digits and '-', starting with a letter, at most 52 characters (a node name is one DNS label)."
  }
}

variable "worker_count" {
  description = "Number of worker droplets. Lowering it removes the last ones (drained first by `selfhosted_bootstrap` when their hosts are passed to it)."
  type        = number
  validation {
    condition     = var.worker_count >= 0 && floor(var.worker_count) == var.worker_count
    error_message = "worker_count is a whole number, 0 or more."
  }
}

variable "region" {
  description = "DigitalOcean region, the VPC's."
  type        = string
}

variable "image" {
  description = "ID of the Fedora CoreOS (or Flatcar) custom image, available in `region`."
  type        = string
}

variable "size" {
  description = "Droplet size slug (e.g. `s-2vcpu-4gb`)."
  type        = string
}

variable "vpc_uuid" {
  description = "The cluster's VPC (`vpc_id` of the cluster module)."
  type        = string
}

variable "tags" {
  description = "Tags of the droplets: the cluster's worker tag (`worker_tag`), which its firewalls name, and any of your own."
  type        = list(string)
}

variable "ssh_keys" {
  description = "IDs or fingerprints of DigitalOcean SSH keys (`ssh_keys` of the cluster module): DigitalOcean wants one for a droplet of a custom image."
  type        = list(string)
}

variable "ssh_authorized_key" {
  description = "Public key the workers let in as `core`; the provider logs in with its private key."
  type        = string
}

variable "ignition_version" {
  description = "Ignition spec version of the OS (`ignition_version` of the cluster module)."
  type        = string
}

variable "worker_ignition" {
  description = "`selfhosted_cluster_assets.<name>.node.worker_ignition` (`worker_ignition` of the cluster module): the worker contract, without credentials (the provider delivers those over SSH)."
  type        = string
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
  description = "Ignition configs (JSON, spec 3.x) merged into the pool's droplets' after the contract's (Butane rendered first: `butane --strict`, or poseidon/ct's `ct_config`)."
  type        = list(string)
  default     = []
}
