# The cluster itself: assets rendered from known names, then the pivot over SSH onto the
# controllers once they exist.

resource "selfhosted_cluster_assets" "cluster" {
  cluster_name       = var.cluster_name
  kubernetes_version = var.kubernetes_version
  api_servers        = [local.api_fqdn]
  etcd_servers       = local.etcd_fqdns
  host_os            = var.host_os
  networking         = var.networking
  pod_cidr           = var.pod_cidr
  service_cidr       = var.service_cidr
  container_images   = var.container_images

  # A stopping apiserver fails /readyz and serves on until the load balancer's health check
  # (apiserver.tf: every 5 s, out after 2 failures) has taken it out.
  extra_flags = {
    kube_apiserver = ["--shutdown-delay-duration=15s"]
  }

  lifecycle {
    precondition {
      condition     = alltrue([for s in var.controller_snippets : tonumber(split(".", jsondecode(s).ignition.version)[1]) <= tonumber(split(".", local.ignition_version)[1])])
      error_message = "controller_snippets holds a snippet whose ignition.version is newer than the OS's Ignition reads (${local.ignition_version}): write it for ${local.ignition_version} or older (with Butane, the variant version that gives it)."
    }
    precondition {
      condition     = var.arch == "amd64" || contains(keys(var.container_images), "selfhosted_agent")
      error_message = "arch = \"arm64\" needs the node agent built for arm64: this provider's releases publish it for amd64 only. Build it on an arm64 machine (bash tests/lane/agent-image.sh packs it), push it to a registry the hosts reach, and name it in container_images = { selfhosted_agent = \"<registry>/selfhosted-agent:<tag>\" }."
    }
  }
}

resource "selfhosted_bootstrap" "cluster" {
  assets = selfhosted_cluster_assets.cluster.assets

  # A node's name is its kubelet's: on AWS the host name, the first label of the private
  # DNS name (ip-10-0-1-23).
  controllers = [
    for c in aws_instance.controller : {
      name    = split(".", c.private_dns)[0]
      address = c.public_ip
    }
  ]

  ssh = {
    user           = "core"
    private_key_wo = var.ssh_private_key
    # Kept on the hosts at every apply that changes them: a rotated key reaches machines whose
    # user data (read at first boot only) still names the old one.
    authorized_keys = distinct(concat([var.ssh_authorized_key], var.ssh_authorized_keys))
  }

  # Every update first takes an etcd snapshot; also keep it off the controllers.
  etcd_snapshot_dir = var.etcd_snapshot_dir

  # etcd members find each other by these names; clients reach the apiservers by this one.
  depends_on = [aws_route53_record.etcd, aws_route53_record.apiserver, aws_lb_listener.apiserver]
}

module "workers" {
  source = "./workers"

  name               = "${var.cluster_name}-worker"
  ami                = local.ami
  instance_type      = var.worker_type
  disk_size          = coalesce(var.worker_disk_size, var.disk_size)
  spot_price         = var.worker_price
  node_labels        = var.worker_node_labels
  node_taints        = var.worker_node_taints
  snippets           = var.worker_snippets
  desired_count      = var.worker_count
  subnet_ids         = aws_subnet.public[*].id
  security_group_ids = [aws_security_group.worker.id]
  ignition_version   = local.ignition_version
  ssh_authorized_key = var.ssh_authorized_key
  joining_ignition   = selfhosted_cluster_assets.cluster.joining_worker_ignition
  target_group_arns  = [for tg in aws_lb_target_group.workers : tg.arn]

  # Workers would wait and retry on their own; this starts them once the API answers.
  depends_on = [selfhosted_bootstrap.cluster]
}
