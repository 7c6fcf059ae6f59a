variable "names" {
  description = "Droplet names, one per droplet: each becomes the host name, hence the kubelet's node name."
  type        = list(string)
}

variable "contract_ignition" {
  description = "The contract's Ignition of each droplet, in the order of `names` (`node.controller_ignition[i]`, or `node.worker_ignition` for every worker)."
  type        = list(string)
  validation {
    condition     = length(var.contract_ignition) == length(var.names)
    error_message = "contract_ignition needs one config per name, in the order of names."
  }
}

variable "ignition_version" {
  description = "Ignition spec version of the OS (3.4.0 Fedora CoreOS, 3.3.0 Flatcar)."
  type        = string
}

variable "ssh_authorized_key" {
  description = "Public key the droplets let in as `core`."
  type        = string
}

variable "kubelet_flags" {
  description = "Flags the kubelets add after `--node-ip` (a worker pool's labels and taints)."
  type        = list(string)
  default     = []
}

variable "snippets" {
  description = "Ignition configs (JSON, spec 3.x) merged after the contract's into every droplet's (Butane rendered first: `butane --strict`, or poseidon/ct's `ct_config`)."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for s in var.snippets : can(regex("^3\\.[0-4]\\.0$", jsondecode(s).ignition.version))])
    error_message = "Each snippet is an Ignition config of spec 3.x: JSON with ignition.version, at most \"3.4.0\" on Fedora CoreOS and \"3.3.0\" on Flatcar. Render Butane YAML with `butane --strict` or poseidon/ct's ct_config first."
  }
}
