output "user_data" {
  description = "The Ignition of each droplet (JSON), in the order of `names`; no credentials in it."
  value       = local.user_data

  precondition {
    condition     = alltrue([for s in var.snippets : tonumber(split(".", jsondecode(s).ignition.version)[1]) <= tonumber(split(".", var.ignition_version)[1])])
    error_message = "snippets holds a snippet whose ignition.version is newer than the OS's Ignition reads (${var.ignition_version}): write it for ${var.ignition_version} or older (with Butane, the variant version that gives it)."
  }
}
