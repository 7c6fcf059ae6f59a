# A cluster's assets are imported from a bootkube-style asset directory
# (tls/ and auth/ as this provider writes them); the ID is its path.
terraform import selfhosted_cluster_assets.example /path/to/assets
