# Ingress, as typhoon's AWS module has it: the apiservers' network load balancer also forwards
# HTTP (80) and HTTPS (443) to the workers, for an ingress controller you run on them (its
# pods on the host's ports 80 and 443, its health on 10254, e.g. ingress-nginx with
# hostNetwork or hostPorts). A worker pool of your own joins with `worker_target_groups`.

resource "aws_lb_target_group" "workers" {
  for_each = local.ingress_ports

  name        = "${var.cluster_name}-workers-${each.key}"
  vpc_id      = aws_vpc.network.id
  target_type = "instance"
  protocol    = "TCP"
  port        = each.value

  # A worker counts once its ingress controller says it is healthy.
  health_check {
    protocol            = "HTTP"
    port                = 10254
    path                = "/healthz"
    healthy_threshold   = 3
    unhealthy_threshold = 3
    interval            = 10
  }
}

resource "aws_lb_listener" "ingress" {
  for_each = local.ingress_ports

  load_balancer_arn = aws_lb.apiserver.arn
  protocol          = "TCP"
  port              = each.value

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.workers[each.key].arn
  }
}

locals {
  ingress_ports = { http = 80, https = 443 }
}

# Clients of the ingress reach the workers through the load balancer, which keeps their
# addresses; its health checks come from its own addresses in the VPC.
resource "aws_vpc_security_group_ingress_rule" "ingress" {
  for_each = local.ingress_ports

  security_group_id = aws_security_group.worker.id
  from_port         = each.value
  to_port           = each.value
  ip_protocol       = "tcp"
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_ingress_rule" "ingress_health" {
  security_group_id = aws_security_group.worker.id
  from_port         = 10254
  to_port           = 10254
  ip_protocol       = "tcp"
  cidr_ipv4         = var.host_cidr
}
