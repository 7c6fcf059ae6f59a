# A three-controller cluster on AWS with an autoscaling worker group, typhoon-style:
# Fedora CoreOS (or Flatcar) hosts boot from Ignition this provider renders, etcd runs on
# the controllers, the apiservers sit behind a network load balancer, and workers join by
# TLS bootstrapping without SSH. Guide: docs/guides/aws.md.

terraform {
  required_version = ">= 1.11"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
    selfhosted = {
      source = "selfhosted/selfhosted"
      # Pinned: a new provider release may bring a new default Kubernetes version.
      version = "~> 0.1.0"
    }
  }
}

provider "aws" {
  region = var.region
}

variable "region" {
  description = "AWS region."
  type        = string
  default     = "eu-central-1"
}

variable "ami" {
  description = "Fedora CoreOS (or Flatcar) AMI of the region; null: the newest of the stable stream, looked up while planning."
  type        = string
  default     = null
}

variable "dns_zone" {
  description = "Route 53 zone the cluster's names go in, e.g. `aws.example.com`."
  type        = string
}

variable "dns_zone_id" {
  description = "ID of that Route 53 zone."
  type        = string
}

variable "ssh_authorized_key" {
  description = "Public key the hosts let in as `core`."
  type        = string
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
  dns_zone            = var.dns_zone
  dns_zone_id         = var.dns_zone_id
  ami                 = var.ami
  ssh_authorized_key  = var.ssh_authorized_key
  ssh_authorized_keys = var.ssh_authorized_keys
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

output "controller_user_data" {
  description = "What each controller boots from (no credentials in it), for review."
  value       = module.nemo.controller_user_data
}

# What the kubernetes and helm providers need (docs/guides/aws.md shows the wiring).
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
