output "user_data" {
  description = "The Ignition of each droplet (JSON), in the order of `names`; no credentials in it."
  value       = local.user_data
}
