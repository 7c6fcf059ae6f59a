# The cluster's VPC: every droplet's second interface, on which etcd, the kubelets' node
# addresses and with them the `kubernetes` Service's endpoints live. The droplets also keep
# their public addresses, for SSH from where terraform runs (restrict `ssh_cidrs`) and for
# the apiserver's DNS name.

resource "digitalocean_vpc" "network" {
  name        = var.cluster_name
  region      = var.region
  ip_range    = var.host_cidr
  description = "Kubernetes cluster ${var.cluster_name}"
}
