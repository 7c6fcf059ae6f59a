# An autoscaling worker group. Workers join without SSH: their user data carries the
# kubelet's bootstrap kubeconfig, the kubelet asks for a client certificate (TLS
# bootstrapping), and the controller-manager approves it.

locals {
  # The pool's own kubelet flags, in the file the contract's kubelet service reads if it
  # exists (/etc/kubernetes/kubelet.env, `KUBELET_EXTRA_ARGS`).
  kubelet_extra_args = join(" ", concat(
    length(var.node_labels) > 0 ? ["--node-labels=${join(",", var.node_labels)}"] : [],
    length(var.node_taints) > 0 ? ["--register-with-taints=${join(",", var.node_taints)}"] : [],
  ))
  kubelet_env = local.kubelet_extra_args == "" ? [] : [{
    path     = "/etc/kubernetes/kubelet.env"
    mode     = 420 # 0644
    contents = { source = "data:;base64,${base64encode("KUBELET_EXTRA_ARGS=\"${local.kubelet_extra_args}\"\n")}" }
  }]
}

resource "aws_launch_template" "worker" {
  name_prefix            = "${var.name}-"
  image_id               = var.ami
  instance_type          = var.instance_type
  vpc_security_group_ids = var.security_group_ids

  user_data = base64encode(jsonencode({
    ignition = {
      version = var.ignition_version
      config = {
        merge = concat(
          [{ source = "data:;base64,${base64encode(var.joining_ignition)}" }],
          # Yours after the provider's: compressed, as user data holds 16 KiB.
          [for s in var.snippets : { source = "data:;base64,${base64gzip(s)}", compression = "gzip" }],
        )
      }
    }
    passwd = {
      users = [{ name = "core", sshAuthorizedKeys = [var.ssh_authorized_key] }]
    }
    storage = { files = local.kubelet_env }
  }))

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_type = "gp3"
      volume_size = var.disk_size
      encrypted   = true
    }
  }

  metadata_options {
    http_tokens = "required"
  }

  dynamic "instance_market_options" {
    for_each = var.spot_price == null ? [] : [var.spot_price]
    content {
      market_type = "spot"
      spot_options {
        max_price = instance_market_options.value
      }
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = { Name = var.name }
  }

  lifecycle {
    create_before_destroy = true
    # The OS updates itself on running hosts; a newer AMI (of `os_stream`, looked up at every
    # plan) would otherwise refresh every worker. It reaches the template with its next
    # replacement (-replace of this template).
    ignore_changes = [image_id]

    precondition {
      condition     = alltrue([for s in var.snippets : tonumber(split(".", jsondecode(s).ignition.version)[1]) <= tonumber(split(".", var.ignition_version)[1])])
      error_message = "snippets holds a snippet whose ignition.version is newer than the OS's Ignition reads (${var.ignition_version}): write it for ${var.ignition_version} or older (with Butane, the variant version that gives it)."
    }
  }
}

resource "aws_autoscaling_group" "worker" {
  name                = var.name
  desired_capacity    = var.desired_count
  min_size            = var.desired_count
  max_size            = var.desired_count + 2
  vpc_zone_identifier = var.subnet_ids
  target_group_arns   = var.target_group_arns

  launch_template {
    id      = aws_launch_template.worker.id
    version = aws_launch_template.worker.latest_version
  }

  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = 50
    }
  }

  tag {
    key                 = "Name"
    value               = var.name
    propagate_at_launch = true
  }
}
