# The hosts' AMI: `ami` when given, else the newest of `os_stream` in the region, from the
# OS's own account (as typhoon looks it up). A newer AMI changes nothing running: controllers
# ignore it (`ami` is in their ignore_changes) and so does the workers' launch template.

locals {
  # Where each OS publishes its AMIs, how they are named, and its streams.
  os_images = {
    fedora-coreos = {
      owner   = "125523088429"
      field   = "description"
      pattern = "Fedora CoreOS ${var.os_stream} *"
      streams = ["stable", "testing", "next"]
    }
    flatcar = {
      owner   = "075585003325"
      field   = "name"
      pattern = "Flatcar-${var.os_stream}-*"
      streams = ["stable", "beta", "alpha"]
    }
  }
  os_image = local.os_images[var.host_os]
  ami      = var.ami != null ? var.ami : data.aws_ami.os[0].image_id
}

data "aws_ami" "os" {
  count = var.ami == null ? 1 : 0

  most_recent = true
  owners      = [local.os_image.owner]

  filter {
    name   = "architecture"
    values = [var.arch == "arm64" ? "arm64" : "x86_64"]
  }
  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }
  filter {
    name   = local.os_image.field
    values = [local.os_image.pattern]
  }

  lifecycle {
    precondition {
      condition     = contains(local.os_image.streams, var.os_stream)
      error_message = "${var.host_os} has the streams ${join(", ", local.os_image.streams)}, not ${var.os_stream}."
    }
  }
}
