# The assets of a cluster whose pod network is cilium.

terraform {
  required_providers {
    selfhosted = {
      source = "selfhosted/selfhosted"
    }
  }
}

resource "selfhosted_cluster_assets" "example" {
  cluster_name = "example"
  api_servers  = ["k8s.example.com"]
  etcd_servers = ["10.0.0.10", "10.0.0.11", "10.0.0.12"]
  networking   = "cilium"
  pod_cidr     = "10.2.0.0/16"
}

output "manifests" {
  value = keys(selfhosted_cluster_assets.example.manifests)
}
