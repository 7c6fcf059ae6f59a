# Quickstart: the assets of a three-controller cluster, written to ./assets,
# and (with -var bootstrap=true) the self-hosted pivot onto three hosts.
# `bash scripts/quickstart.sh` from the repository root applies the assets and
# needs no cloud account; the hosts below are placeholders (documentation
# addresses): put your machines there, or plan against them to review.

terraform {
  required_version = ">= 1.11"
  required_providers {
    selfhosted = {
      source = "selfhosted/selfhosted"
    }
  }
}

variable "controllers" {
  description = "Controller hosts: node name and SSH address."
  type        = list(object({ name = string, address = string }))
  default = [
    { name = "nemo-controller-0", address = "203.0.113.10" },
    { name = "nemo-controller-1", address = "203.0.113.11" },
    { name = "nemo-controller-2", address = "203.0.113.12" },
  ]
}

variable "bootstrap" {
  description = "Also run the pivot onto the controllers (needs reachable hosts with a kubelet)."
  type        = bool
  default     = false
}

variable "ssh_private_key_file" {
  description = "Private key to log in to the hosts as `core`."
  type        = string
  default     = "~/.ssh/id_ed25519"
}

resource "selfhosted_cluster_assets" "nemo" {
  cluster_name = "nemo"
  api_servers  = ["nemo.example.com"]
  etcd_servers = [for c in var.controllers : c.address]
  asset_dir    = "${path.module}/assets"
}

resource "selfhosted_bootstrap" "nemo" {
  count = var.bootstrap ? 1 : 0

  assets      = selfhosted_cluster_assets.nemo.assets
  controllers = var.controllers
  ssh = {
    user           = "core"
    private_key_wo = file(pathexpand(var.ssh_private_key_file))
  }
}

output "server_url" {
  value = selfhosted_cluster_assets.nemo.server_url
}

output "cluster_dns_service_ip" {
  value = selfhosted_cluster_assets.nemo.cluster_dns_service_ip
}

output "certificate_expiry" {
  value = selfhosted_cluster_assets.nemo.certificate_expiry
}

output "admin_kubeconfig" {
  value     = selfhosted_cluster_assets.nemo.admin_kubeconfig
  sensitive = true
}
