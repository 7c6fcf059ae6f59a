output "hosts" {
  description = "The workers as `selfhosted_bootstrap.workers` takes them: node name and public address (SSH)."
  value       = [for d in digitalocean_droplet.worker : { name = d.name, address = d.ipv4_address }]
}

output "names" {
  description = "The workers' droplet names, which are their node names."
  value       = digitalocean_droplet.worker[*].name
}

output "addresses" {
  description = "Public addresses of the workers."
  value       = digitalocean_droplet.worker[*].ipv4_address
}

output "private_addresses" {
  description = "VPC addresses of the workers (their nodes' InternalIP)."
  value       = digitalocean_droplet.worker[*].ipv4_address_private
}

output "droplet_ids" {
  description = "IDs of the worker droplets (e.g. for a load balancer's `droplet_ids`)."
  value       = digitalocean_droplet.worker[*].id
}

output "kubelet_flags" {
  description = "The flags the pool's kubelets add after `--node-ip` (labels, taints); empty for none."
  value       = local.kubelet_flags
}

output "user_data" {
  description = "The Ignition each worker boots from (no credentials in it), for review."
  value       = module.ignition.user_data
}
