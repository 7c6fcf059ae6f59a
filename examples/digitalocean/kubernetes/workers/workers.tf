# Worker droplets, made with count as typhoon does (DigitalOcean has no autoscaling groups).
# They boot from the worker contract, which holds no credentials: the provider reaches each
# one over SSH (pass `hosts` to `selfhosted_bootstrap.workers`), delivers the kubelet's
# bootstrap kubeconfig and the CA, which start the kubelet, and from then on drains a
# worker that leaves and moves each worker's kubelet to a new version, node by node.

locals {
  # The pool's own kubelet flags, after `--node-ip` in /etc/kubernetes/kubelet.env.
  kubelet_flags = concat(
    length(var.node_labels) > 0 ? ["--node-labels=${join(",", var.node_labels)}"] : [],
    length(var.node_taints) > 0 ? ["--register-with-taints=${join(",", var.node_taints)}"] : [],
  )
  names = [for i in range(var.worker_count) : "${var.name}-${i}"]
}

module "ignition" {
  source = "../ignition"

  names              = local.names
  contract_ignition  = [for _ in local.names : var.worker_ignition]
  ignition_version   = var.ignition_version
  ssh_authorized_key = var.ssh_authorized_key
  kubelet_flags      = local.kubelet_flags
  snippets           = var.snippets
}

resource "digitalocean_droplet" "worker" {
  count = var.worker_count

  name     = local.names[count.index]
  region   = var.region
  image    = var.image
  size     = var.size
  vpc_uuid = var.vpc_uuid
  # Custom images get no IPv6 address on DigitalOcean.
  ipv6     = false
  ssh_keys = var.ssh_keys
  tags     = var.tags

  user_data = module.ignition.user_data[count.index]

  # Destroying a worker shuts it down first: its kubelet and containers stop cleanly.
  graceful_shutdown = true

  lifecycle {
    # Each of these replaces a droplet on DigitalOcean. A new kubernetes_version changes
    # the contract (the kubelet image), but the provider moves running workers' kubelets
    # over SSH; replace a worker on purpose (`terraform apply -replace`) to start it anew.
    ignore_changes = [image, user_data, ssh_keys]
  }
}
