# Controllers: each boots from its own Ignition (kubelet, etcd member `etcd<i>`, containerd)
# and waits for the provider to deliver its credentials over SSH. The droplet's name is its
# host name and so its node name; etcd's names are built from known strings, so the plan
# knows every controller's user data.

locals {
  controller_names = [for i in range(var.controller_count) : "${var.cluster_name}-controller-${i}"]
  etcd_fqdns       = [for i in range(var.controller_count) : "${var.cluster_name}-etcd${i}.${var.dns_zone}"]
  # The spec version the OS's Ignition reads (Butane's fcos 1.5.0 / flatcar 1.0.0).
  ignition_version = var.host_os == "flatcar" ? "3.3.0" : "3.4.0"
}

module "controller_ignition" {
  source = "./ignition"

  names              = local.controller_names
  contract_ignition  = selfhosted_cluster_assets.cluster.node.controller_ignition
  ignition_version   = local.ignition_version
  ssh_authorized_key = var.ssh_authorized_key
  snippets           = var.controller_snippets
}

# etcd members find each other by these names, on the VPC.
resource "digitalocean_record" "etcd" {
  count = var.controller_count

  domain = var.dns_zone
  name   = "${var.cluster_name}-etcd${count.index}"
  type   = "A"
  # Short: a replaced controller's record moves to the new droplet's address, and the other
  # members resolve it again when its member joins.
  ttl   = 60
  value = digitalocean_droplet.controller[count.index].ipv4_address_private
}

resource "digitalocean_droplet" "controller" {
  count = var.controller_count

  name     = local.controller_names[count.index]
  region   = var.region
  image    = var.os_image
  size     = var.controller_type
  vpc_uuid = digitalocean_vpc.network.id
  # Custom images get no IPv6 address on DigitalOcean.
  ipv6     = false
  ssh_keys = local.ssh_keys
  tags     = [digitalocean_tag.controller.name]

  user_data = module.controller_ignition.user_data[count.index]

  # Destroying a controller shuts it down first: etcd and the apiserver stop cleanly.
  graceful_shutdown = true

  lifecycle {
    # Each of these replaces a droplet on DigitalOcean. A new image or contract does not
    # replace a running controller: upgrade the control plane through kubernetes_version,
    # and droplets one at a time (`terraform apply -replace`).
    ignore_changes = [image, user_data, ssh_keys]
  }
}
