# Who gets in. Droplets carry a controller or a worker tag, and firewalls name the tags, so
# a droplet added later is covered by its tag alone. A DigitalOcean firewall filters the VPC
# interface too, and a tag as source matches its droplets' public and VPC addresses alike.
#
# Opened: SSH from `ssh_cidrs`; the apiserver (6443) from `apiserver_cidrs` and from the
# droplets (kubelets, kube-proxy and the pod network's agents reach it by its DNS name,
# whose addresses are public); etcd (2379-2380) between controllers; kubelets (10250) from
# every droplet (the apiservers, metrics-server, Prometheus); the pod network's VXLAN
# between every droplet (UDP 4789 for flannel and Calico, 8472 for Cilium, plus Cilium's
# health checks on TCP 4240); ICMP between droplets; NodePorts from `nodeport_cidrs` if
# any. Outbound: everything.

resource "digitalocean_tag" "controller" {
  name = "${var.cluster_name}-controller"
}

resource "digitalocean_tag" "worker" {
  name = "${var.cluster_name}-worker"
}

# DigitalOcean wants an SSH key of the account for a droplet of a custom image. The hosts'
# Ignition lets `core` in with `ssh_authorized_key` either way.
resource "digitalocean_ssh_key" "cluster" {
  count = length(var.ssh_fingerprints) == 0 ? 1 : 0

  name       = var.cluster_name
  public_key = var.ssh_authorized_key
}

locals {
  ssh_keys     = length(var.ssh_fingerprints) > 0 ? var.ssh_fingerprints : digitalocean_ssh_key.cluster[*].fingerprint
  cluster_tags = [digitalocean_tag.controller.name, digitalocean_tag.worker.name]
  vxlan_port   = var.networking == "cilium" ? "8472" : "4789"
}

resource "digitalocean_firewall" "controller" {
  name = "${var.cluster_name}-controller"
  tags = [digitalocean_tag.controller.name]

  inbound_rule {
    protocol         = "tcp"
    port_range       = "22"
    source_addresses = var.ssh_cidrs
  }

  inbound_rule {
    protocol         = "tcp"
    port_range       = "6443"
    source_addresses = var.apiserver_cidrs
  }

  inbound_rule {
    protocol    = "tcp"
    port_range  = "6443"
    source_tags = local.cluster_tags
  }

  inbound_rule {
    protocol    = "tcp"
    port_range  = "2379-2380"
    source_tags = [digitalocean_tag.controller.name]
  }
}

resource "digitalocean_firewall" "worker" {
  name = "${var.cluster_name}-worker"
  tags = [digitalocean_tag.worker.name]

  inbound_rule {
    protocol         = "tcp"
    port_range       = "22"
    source_addresses = var.ssh_cidrs
  }

  dynamic "inbound_rule" {
    for_each = length(var.nodeport_cidrs) > 0 ? ["tcp", "udp"] : []
    content {
      protocol         = inbound_rule.value
      port_range       = "30000-32767"
      source_addresses = var.nodeport_cidrs
    }
  }
}

# Between every droplet of the cluster, and out.
resource "digitalocean_firewall" "nodes" {
  name = "${var.cluster_name}-nodes"
  tags = local.cluster_tags

  inbound_rule {
    protocol    = "tcp"
    port_range  = "10250"
    source_tags = local.cluster_tags
  }

  inbound_rule {
    protocol    = "udp"
    port_range  = local.vxlan_port
    source_tags = local.cluster_tags
  }

  dynamic "inbound_rule" {
    for_each = var.networking == "cilium" ? ["4240"] : []
    content {
      protocol    = "tcp"
      port_range  = inbound_rule.value
      source_tags = local.cluster_tags
    }
  }

  inbound_rule {
    protocol    = "icmp"
    source_tags = local.cluster_tags
  }

  outbound_rule {
    protocol              = "tcp"
    port_range            = "1-65535"
    destination_addresses = ["0.0.0.0/0", "::/0"]
  }

  outbound_rule {
    protocol              = "udp"
    port_range            = "1-65535"
    destination_addresses = ["0.0.0.0/0", "::/0"]
  }

  outbound_rule {
    protocol              = "icmp"
    destination_addresses = ["0.0.0.0/0", "::/0"]
  }
}
