# The apiservers under one DNS name, round robin: one A record per controller, all under
# `<cluster>.<dns_zone>`, each with its controller's public address. No load balancer, so
# no health check either: a record stays while its controller reboots, and a client sent
# there retries or tries the name's next address (docs/guides/digitalocean.md, "The
# apiserver's name"). The name is built from known strings, so `api_servers` and with it
# every manifest is known at plan.

locals {
  api_fqdn = "${var.cluster_name}.${var.dns_zone}"
}

resource "digitalocean_record" "apiserver" {
  count = var.controller_count

  domain = var.dns_zone
  name   = var.cluster_name
  type   = "A"
  # Matters when an address changes (a replaced controller) or goes (a shrink): resolvers
  # may hand out the old one this long. A reboot keeps the address and its record.
  ttl   = var.apiserver_dns_ttl
  value = digitalocean_droplet.controller[count.index].ipv4_address
}
