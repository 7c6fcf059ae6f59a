output "kubeconfig_admin" {
  description = "Admin kubeconfig."
  value       = selfhosted_cluster_assets.cluster.admin_kubeconfig
  sensitive   = true
}

output "server_url" {
  description = "The apiserver's URL (the round-robin DNS name)."
  value       = selfhosted_cluster_assets.cluster.server_url
}

output "ca_certificate" {
  description = "The cluster CA (PEM), for the kubernetes and helm providers."
  value       = selfhosted_cluster_assets.cluster.ca_certificate
}

output "admin_client_certificate" {
  description = "The admin client certificate (PEM), for the kubernetes and helm providers."
  value       = selfhosted_cluster_assets.cluster.admin_client_certificate
}

output "admin_client_key" {
  description = "Its private key (PEM)."
  value       = selfhosted_cluster_assets.cluster.admin_client_key
  sensitive   = true
}

output "controller_names" {
  description = "The controllers' droplet names, which are their node names."
  value       = digitalocean_droplet.controller[*].name
}

output "controller_addresses" {
  description = "Public addresses of the controllers."
  value       = digitalocean_droplet.controller[*].ipv4_address
}

output "controller_private_addresses" {
  description = "VPC addresses of the controllers (etcd's, and their nodes' InternalIP)."
  value       = digitalocean_droplet.controller[*].ipv4_address_private
}

output "worker_names" {
  description = "The workers' droplet names, which are their node names."
  value       = module.workers.names
}

output "worker_addresses" {
  description = "Public addresses of the workers."
  value       = module.workers.addresses
}

output "controller_tag" {
  description = "Tag of the controller droplets, for firewalls of your own."
  value       = digitalocean_tag.controller.name
}

output "worker_tag" {
  description = "Tag of the worker droplets, for firewalls and load balancers of your own (ingress)."
  value       = digitalocean_tag.worker.name
}

output "vpc_id" {
  description = "The cluster's VPC."
  value       = digitalocean_vpc.network.id
}

# What a worker pool of your own needs (the `workers` module, called outside this one, as
# docs/guides/digitalocean.md shows), with `worker_tag` and `vpc_id` above; pass its
# `hosts` back in as `extra_workers`.
output "ssh_keys" {
  description = "The DigitalOcean SSH keys the droplets get (fingerprints)."
  value       = local.ssh_keys
}

output "ignition_version" {
  description = "The Ignition spec version the hosts' OS reads."
  value       = local.ignition_version
}

output "worker_ignition" {
  description = "The worker contract's Ignition (no credentials in it: the provider delivers them over SSH)."
  value       = selfhosted_cluster_assets.cluster.node.worker_ignition
}

output "controller_user_data" {
  description = "The Ignition each controller boots from (no credentials in it), for review."
  value       = module.controller_ignition.user_data
}

output "worker_user_data" {
  description = "The Ignition each worker of the module's pool boots from (no credentials in it), for review."
  value       = module.workers.user_data
}
