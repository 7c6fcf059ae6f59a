# Controllers: each boots from its own Ignition (kubelet, etcd member `etcd<i>`, containerd)
# and waits for the provider to deliver its credentials over SSH. etcd's names are built
# from known strings, so the plan knows every controller's user data.

locals {
  etcd_fqdns = [for i in range(var.controller_count) : "${var.cluster_name}-etcd${i}.${var.dns_zone}"]
  # The spec version the OS's Ignition reads (Butane's fcos 1.5.0 / flatcar 1.0.0).
  ignition_version = var.host_os == "flatcar" ? "3.3.0" : "3.4.0"
  # The provider's config of each controller, merged into one that lets `core` in with
  # your key, then your snippets.
  controller_user_data = [
    for ignition in selfhosted_cluster_assets.cluster.node.controller_ignition : jsonencode({
      ignition = {
        version = local.ignition_version
        config = { merge = concat(
          [{ source = "data:;base64,${base64encode(ignition)}" }],
          # Yours after the provider's: compressed, as user data holds 16 KiB.
          [for s in var.controller_snippets : { source = "data:;base64,${base64gzip(s)}", compression = "gzip" }],
        ) }
      }
      passwd = {
        users = [{ name = "core", sshAuthorizedKeys = [var.ssh_authorized_key] }]
      }
    })
  ]
}

resource "aws_route53_record" "etcd" {
  count = var.controller_count

  zone_id = var.dns_zone_id
  name    = local.etcd_fqdns[count.index]
  type    = "A"
  # Short: a replaced controller's record moves to the new instance's address, and the other
  # members resolve it again when its member joins.
  ttl     = 60
  records = [aws_instance.controller[count.index].private_ip]
}

resource "aws_instance" "controller" {
  count = var.controller_count

  ami                    = local.ami
  instance_type          = var.controller_type
  subnet_id              = aws_subnet.public[count.index % length(aws_subnet.public)].id
  vpc_security_group_ids = [aws_security_group.controller.id]

  user_data = local.controller_user_data[count.index]

  root_block_device {
    volume_type = "gp3"
    volume_size = coalesce(var.controller_disk_size, var.disk_size)
    encrypted   = true
  }

  metadata_options {
    http_tokens = "required"
  }

  tags = { Name = "${var.cluster_name}-controller-${count.index}" }

  lifecycle {
    # A new AMI or contract does not replace a running controller: upgrade the control
    # plane through kubernetes_version, and hosts one at a time (taint and apply).
    ignore_changes = [ami, user_data]
  }
}
