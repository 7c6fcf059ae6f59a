# What a droplet boots from: the contract's Ignition, merged into a config that names the
# host (the droplet's name, which the plan knows), lets `core` in with your key, and runs
# kubelet-node-ip.sh before the kubelet, so that the node's address is the VPC one; then
# your snippets.

locals {
  node_ip_script = "/opt/selfhosted/kubelet-node-ip"
  node_ip_unit   = <<-EOT
    [Unit]
    Description=Set the kubelet's node IP to this droplet's VPC address
    Wants=network-online.target
    After=network-online.target
    Before=kubelet.service

    [Service]
    Type=oneshot
    RemainAfterExit=true
    ExecStart=/bin/bash ${local.node_ip_script}%{for flag in var.kubelet_flags} ${flag}%{endfor}

    [Install]
    RequiredBy=kubelet.service
  EOT

  user_data = [
    for i, name in var.names : jsonencode({
      ignition = {
        version = var.ignition_version
        config = {
          merge = concat(
            [{ source = "data:;base64,${base64encode(var.contract_ignition[i])}" }],
            # Yours after the contract's: compressed, as user data holds 64 KiB.
            [for s in var.snippets : { source = "data:;base64,${base64gzip(s)}", compression = "gzip" }],
          )
        }
      }
      passwd = {
        users = [{ name = "core", sshAuthorizedKeys = [var.ssh_authorized_key] }]
      }
      storage = {
        files = [
          {
            path      = "/etc/hostname"
            mode      = 420 # 0644
            overwrite = true
            contents  = { source = "data:;base64,${base64encode("${name}\n")}" }
          },
          {
            path     = local.node_ip_script
            mode     = 493 # 0755
            contents = { source = "data:;base64,${base64encode(file("${path.module}/kubelet-node-ip.sh"))}" }
          },
        ]
      }
      systemd = {
        units = [{ name = "kubelet-node-ip.service", enabled = true, contents = local.node_ip_unit }]
      }
    })
  ]
}
