# Quickstart: the assets of a three-controller cluster, written to ./assets.
# Needs no cloud account: `bash scripts/quickstart.sh` from the repository root.

terraform {
  required_version = ">= 1.5"
  required_providers {
    selfhosted = {
      source = "selfhosted/selfhosted"
    }
  }
}

resource "selfhosted_cluster_assets" "nemo" {
  cluster_name = "nemo"
  api_servers  = ["nemo.example.com"]
  etcd_servers = ["nemo-etcd0.example.com", "nemo-etcd1.example.com", "nemo-etcd2.example.com"]
  asset_dir    = "${path.module}/assets"
}

output "server_url" {
  value = selfhosted_cluster_assets.nemo.server_url
}

output "cluster_dns_service_ip" {
  value = selfhosted_cluster_assets.nemo.cluster_dns_service_ip
}

output "certificate_expiry" {
  value = selfhosted_cluster_assets.nemo.certificate_expiry
}

output "admin_kubeconfig" {
  value     = selfhosted_cluster_assets.nemo.admin_kubeconfig
  sensitive = true
}
