# The cluster itself: assets rendered from known names, then the pivot over SSH onto the
# controllers and workers once they exist.

resource "selfhosted_cluster_assets" "cluster" {
  cluster_name       = var.cluster_name
  kubernetes_version = var.kubernetes_version
  api_servers        = [local.api_fqdn]
  etcd_servers       = local.etcd_fqdns
  host_os            = var.host_os
  networking         = var.networking
  pod_cidr           = var.pod_cidr
  service_cidr       = var.service_cidr
}

module "workers" {
  source = "./workers"

  name               = "${var.cluster_name}-worker"
  worker_count       = var.worker_count
  region             = var.region
  image              = var.os_image
  size               = var.worker_type
  vpc_uuid           = digitalocean_vpc.network.id
  tags               = [digitalocean_tag.worker.name]
  ssh_keys           = local.ssh_keys
  ssh_authorized_key = var.ssh_authorized_key
  ignition_version   = local.ignition_version
  worker_ignition    = selfhosted_cluster_assets.cluster.node.worker_ignition
  node_labels        = var.worker_node_labels
  node_taints        = var.worker_node_taints
  snippets           = var.worker_snippets
}

resource "selfhosted_bootstrap" "cluster" {
  assets = selfhosted_cluster_assets.cluster.assets

  # A node's name is its kubelet's, the host name: on DigitalOcean the droplet's name.
  controllers = [
    for d in digitalocean_droplet.controller : {
      name    = d.name
      address = d.ipv4_address
    }
  ]

  # Workers the provider reaches: it delivers their kubelets' credentials, drains and
  # removes a worker that leaves this list, and moves their kubelets node by node when
  # kubernetes_version changes.
  workers = concat(module.workers.hosts, var.extra_workers)

  ssh = {
    user           = "core"
    private_key_wo = var.ssh_private_key
    # Kept on the hosts at every apply that changes them: a rotated key reaches machines whose
    # user data (read at first boot only) still names the old one.
    authorized_keys = distinct(concat([var.ssh_authorized_key], var.ssh_authorized_keys))
    host_keys       = var.ssh_host_keys
  }

  # Every update first takes an etcd snapshot; also keep it off the controllers.
  etcd_snapshot_dir = var.etcd_snapshot_dir

  # etcd members find each other by these names, clients the apiservers by that one, and
  # the pod network needs its ports open before its agents start.
  depends_on = [
    digitalocean_record.etcd,
    digitalocean_record.apiserver,
    digitalocean_firewall.controller,
    digitalocean_firewall.worker,
    digitalocean_firewall.nodes,
  ]
}
