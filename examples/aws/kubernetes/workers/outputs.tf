output "autoscaling_group_name" {
  description = "Name of the workers' autoscaling group."
  value       = aws_autoscaling_group.worker.name
}

output "kubelet_extra_args" {
  description = "The flags the pool's kubelets add to the contract's (labels, taints); empty for none."
  value       = local.kubelet_extra_args
}
