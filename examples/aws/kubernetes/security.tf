# What the hosts must reach of each other: etcd between controllers, the apiserver from
# anywhere (the load balancer keeps client addresses), kubelets from the controllers,
# kubelets of workers from workers too (metrics-server, Prometheus), the pod network's VXLAN
# between every host (UDP 4789 for flannel and Calico, 8472 for Cilium, plus Cilium's health
# checks on TCP 4240), and SSH from `ssh_cidrs`.

resource "aws_security_group" "controller" {
  name        = "${var.cluster_name}-controller"
  description = "${var.cluster_name} controllers"
  vpc_id      = aws_vpc.network.id
  tags        = { Name = "${var.cluster_name}-controller" }
}

resource "aws_security_group" "worker" {
  name        = "${var.cluster_name}-worker"
  description = "${var.cluster_name} workers"
  vpc_id      = aws_vpc.network.id
  tags        = { Name = "${var.cluster_name}-worker" }
}

locals {
  vxlan_port = var.networking == "cilium" ? 8472 : 4789
  # (security group, port range, protocol, source security group)
  cilium_health = var.networking != "cilium" ? {} : {
    for pair in setproduct(["controller", "worker"], ["controller", "worker"]) :
    "${pair[0]}-cilium-health-${pair[1]}" => [
      pair[0] == "controller" ? aws_security_group.controller.id : aws_security_group.worker.id,
      4240, 4240, "tcp",
      pair[1] == "controller" ? aws_security_group.controller.id : aws_security_group.worker.id,
    ]
  }
  between_hosts = merge(local.cilium_health, {
    controller-etcd            = [aws_security_group.controller.id, 2379, 2380, "tcp", aws_security_group.controller.id]
    controller-kubelet-self    = [aws_security_group.controller.id, 10250, 10250, "tcp", aws_security_group.controller.id]
    controller-kubelet-workers = [aws_security_group.controller.id, 10250, 10250, "tcp", aws_security_group.worker.id]
    controller-vxlan-self      = [aws_security_group.controller.id, local.vxlan_port, local.vxlan_port, "udp", aws_security_group.controller.id]
    controller-vxlan-workers   = [aws_security_group.controller.id, local.vxlan_port, local.vxlan_port, "udp", aws_security_group.worker.id]
    worker-kubelet             = [aws_security_group.worker.id, 10250, 10250, "tcp", aws_security_group.controller.id]
    worker-kubelet-self        = [aws_security_group.worker.id, 10250, 10250, "tcp", aws_security_group.worker.id]
    worker-vxlan-self          = [aws_security_group.worker.id, local.vxlan_port, local.vxlan_port, "udp", aws_security_group.worker.id]
    worker-vxlan-controllers   = [aws_security_group.worker.id, local.vxlan_port, local.vxlan_port, "udp", aws_security_group.controller.id]
  })
}

resource "aws_vpc_security_group_ingress_rule" "between_hosts" {
  for_each = local.between_hosts

  security_group_id            = each.value[0]
  from_port                    = each.value[1]
  to_port                      = each.value[2]
  ip_protocol                  = each.value[3]
  referenced_security_group_id = each.value[4]
}

resource "aws_vpc_security_group_ingress_rule" "apiserver" {
  security_group_id = aws_security_group.controller.id
  from_port         = 6443
  to_port           = 6443
  ip_protocol       = "tcp"
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  for_each = {
    for pair in setproduct(["controller", "worker"], var.ssh_cidrs) : "${pair[0]}-${pair[1]}" => pair
  }

  security_group_id = each.value[0] == "controller" ? aws_security_group.controller.id : aws_security_group.worker.id
  from_port         = 22
  to_port           = 22
  ip_protocol       = "tcp"
  cidr_ipv4         = each.value[1]
}

resource "aws_vpc_security_group_egress_rule" "all" {
  for_each = {
    controller = aws_security_group.controller.id
    worker     = aws_security_group.worker.id
  }

  security_group_id = each.value
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}
