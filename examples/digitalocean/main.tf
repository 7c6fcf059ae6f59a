# A three-controller cluster on DigitalOcean with two workers, typhoon-style: Fedora CoreOS
# (or Flatcar) droplets boot from Ignition this provider renders, etcd runs on the
# controllers over the VPC, the apiservers answer under one round-robin DNS name, and the
# provider reaches every droplet over SSH, workers included, so upgrades move each kubelet
# node by node. Guide: docs/guides/digitalocean.md.

terraform {
  required_version = ">= 1.11"
  required_providers {
    digitalocean = {
      source  = "digitalocean/digitalocean"
      version = "~> 2.40"
    }
    selfhosted = {
      source = "selfhosted/selfhosted"
      # Pinned: a new provider release may bring a new default Kubernetes version.
      version = "~> 0.1.0"
    }
  }
}

# The API token comes from the environment: `export DIGITALOCEAN_TOKEN=…` (a personal access
# token with read and write scope), so no token is written in a file here.
provider "digitalocean" {}

variable "region" {
  description = "DigitalOcean region."
  type        = string
  default     = "fra1"
}

variable "os_image" {
  description = "ID of the Fedora CoreOS custom image in that region (`doctl compute image list-user`); docs/guides/digitalocean.md shows how to import one."
  type        = string
}

variable "dns_zone" {
  description = "DigitalOcean domain the cluster's names go in, e.g. `do.example.com`."
  type        = string
}

variable "ssh_authorized_key" {
  description = "Public key the droplets let in as `core`."
  type        = string
}

variable "ssh_fingerprints" {
  description = "Fingerprints of SSH keys already in the DigitalOcean account for the droplets; empty: `ssh_authorized_key` is added to the account."
  type        = list(string)
  default     = []
}

variable "ssh_authorized_keys" {
  description = "More public keys the hosts keep letting in, beside `ssh_authorized_key`: the new key during a rotation (docs/resources/bootstrap.md, \"Rotating the SSH key\")."
  type        = list(string)
  default     = []
}

variable "ssh_private_key_file" {
  description = "Its private key, which the provider uses for the pivot (read write-only, never stored)."
  type        = string
  default     = "~/.ssh/id_ed25519"
}

module "nemo" {
  source = "./kubernetes"

  cluster_name        = "nemo"
  region              = var.region
  dns_zone            = var.dns_zone
  os_image            = var.os_image
  ssh_authorized_key  = var.ssh_authorized_key
  ssh_authorized_keys = var.ssh_authorized_keys
  ssh_fingerprints    = var.ssh_fingerprints
  ssh_private_key     = file(pathexpand(var.ssh_private_key_file))
  controller_count    = 3
  worker_count        = 2
  # Set, never left to the provider's default, so `terraform init -upgrade` never moves the
  # cluster to another Kubernetes by itself. Upgrades: docs/guides/upgrades.md.
  kubernetes_version = "v1.34.3"
}

output "kubeconfig" {
  description = "Admin kubeconfig: `terraform output -raw kubeconfig > nemo.kubeconfig`."
  value       = module.nemo.kubeconfig_admin
  sensitive   = true
}

output "server_url" {
  value = module.nemo.server_url
}

output "controller_addresses" {
  description = "Public addresses of the controllers, for `ssh core@<address>`."
  value       = module.nemo.controller_addresses
}

output "worker_addresses" {
  description = "Public addresses of the workers."
  value       = module.nemo.worker_addresses
}

output "controller_user_data" {
  description = "What each controller boots from (no credentials in it), for review."
  value       = module.nemo.controller_user_data
}

output "worker_user_data" {
  description = "What each worker boots from (no credentials in it), for review."
  value       = module.nemo.worker_user_data
}

# What the kubernetes and helm providers need (docs/guides/digitalocean.md shows the wiring).
output "ca_certificate" {
  value = module.nemo.ca_certificate
}

output "admin_client_certificate" {
  value = module.nemo.admin_client_certificate
}

output "admin_client_key" {
  value     = module.nemo.admin_client_key
  sensitive = true
}
