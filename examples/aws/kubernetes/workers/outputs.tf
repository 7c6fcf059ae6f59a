output "autoscaling_group_name" {
  description = "Name of the workers' autoscaling group."
  value       = aws_autoscaling_group.worker.name
}
