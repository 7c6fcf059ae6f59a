# The apiservers behind a network load balancer, under a DNS name known before anything
# exists: `api_servers` names it, so the plan knows the manifests and the user data.
# The health check asks each apiserver's /readyz over HTTPS, so a booting apiserver gets
# no clients before it serves.

locals {
  api_fqdn = "${var.cluster_name}.${var.dns_zone}"
}

resource "aws_lb" "apiserver" {
  name               = "${var.cluster_name}-apiserver"
  load_balancer_type = "network"
  internal           = false
  subnets            = aws_subnet.public[*].id
  # Each zone's address of the load balancer forwards to healthy controllers in every zone:
  # without it, a client that resolved the address of a zone whose controller is down (or
  # that has none, with fewer controllers than zones) fails.
  enable_cross_zone_load_balancing = true
}

resource "aws_lb_target_group" "apiserver" {
  name        = "${var.cluster_name}-apiserver"
  vpc_id      = aws_vpc.network.id
  target_type = "instance"
  protocol    = "TCP"
  port        = 6443

  health_check {
    protocol            = "HTTPS"
    port                = 6443
    path                = "/readyz"
    healthy_threshold   = 3
    unhealthy_threshold = 2
    interval            = 5
  }
}

resource "aws_lb_listener" "apiserver" {
  load_balancer_arn = aws_lb.apiserver.arn
  protocol          = "TCP"
  port              = 6443

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.apiserver.arn
  }
}

resource "aws_lb_target_group_attachment" "controller" {
  count = var.controller_count

  target_group_arn = aws_lb_target_group.apiserver.arn
  target_id        = aws_instance.controller[count.index].id
  port             = 6443
}

resource "aws_route53_record" "apiserver" {
  zone_id = var.dns_zone_id
  name    = local.api_fqdn
  type    = "A"

  alias {
    name                   = aws_lb.apiserver.dns_name
    zone_id                = aws_lb.apiserver.zone_id
    evaluate_target_health = true
  }
}
