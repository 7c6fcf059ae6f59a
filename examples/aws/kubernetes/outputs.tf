output "kubeconfig_admin" {
  description = "Admin kubeconfig."
  value       = selfhosted_cluster_assets.cluster.admin_kubeconfig
  sensitive   = true
}

output "server_url" {
  description = "The apiserver's URL (through the load balancer)."
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

output "controller_addresses" {
  description = "Public addresses of the controllers."
  value       = aws_instance.controller[*].public_ip
}

output "worker_security_group_id" {
  description = "Security group of the workers, for rules of your own (ingress)."
  value       = aws_security_group.worker.id
}

# What a worker pool of your own needs (the `workers` module, called outside this one, as
# docs/guides/aws.md shows), with `worker_security_group_id` above.
output "subnet_ids" {
  description = "The public subnets, one per zone."
  value       = aws_subnet.public[*].id
}

output "ignition_version" {
  description = "The Ignition spec version the hosts' OS reads."
  value       = local.ignition_version
}

output "joining_worker_ignition" {
  description = "The Ignition of workers that join without SSH: it holds the workers' bootstrap token."
  value       = selfhosted_cluster_assets.cluster.joining_worker_ignition
  sensitive   = true
}

output "ami" {
  description = "The AMI the hosts boot (`ami`, or the newest of `os_stream`): `ami` of a worker pool of your own."
  value       = local.ami
}

output "ingress_dns_name" {
  description = "The load balancer's DNS name, for records of your own pointing at the ingress (HTTP 80 and HTTPS 443 to the workers)."
  value       = aws_lb.apiserver.dns_name
}

output "worker_target_groups" {
  description = "The ingress target groups (HTTP 80, HTTPS 443): `target_group_arns` of a worker pool of your own."
  value       = [for tg in aws_lb_target_group.workers : tg.arn]
}

output "vpc_id" {
  description = "The cluster's VPC."
  value       = aws_vpc.network.id
}

output "controller_user_data" {
  description = "The Ignition each controller boots from (no credentials in it), for review."
  value       = local.controller_user_data
}
