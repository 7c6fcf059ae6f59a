resource "selfhosted_cluster_assets" "example" {
  cluster_name = "example"
  api_servers  = ["example.com", "203.0.113.10"]
  etcd_servers = ["etcd0.example.com"]

  key_algorithm       = "ECDSA_P256"
  validity_hours      = 8760
  early_renewal_hours = 720
}
