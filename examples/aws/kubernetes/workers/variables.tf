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

variable "target_group_arns" {
  description = "Load balancer target groups the workers join (e.g. for ingress)."
  type        = list(string)
  default     = []
}
