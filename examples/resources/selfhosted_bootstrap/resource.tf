resource "selfhosted_bootstrap" "example" {
  assets = selfhosted_cluster_assets.example.assets
  controllers = [
    { name = "example-controller-0", address = "203.0.113.10" },
  ]
  workers = [
    { name = "example-worker-0", address = "203.0.113.20" },
  ]
  ssh = {
    user           = "core"
    private_key_wo = file("~/.ssh/id_ed25519")
    host_keys = {
      "example-controller-0" = "SHA256:replace-with-the-host-key-fingerprint"
    }
  }
  timeouts = {
    create = "30m"
  }
}
