# A VPC with one public subnet per availability zone. Hosts get public addresses so the
# provider reaches them over SSH; restrict `ssh_cidrs` to where terraform runs.

resource "aws_vpc" "network" {
  cidr_block           = var.host_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = { Name = var.cluster_name }
}

resource "aws_internet_gateway" "gateway" {
  vpc_id = aws_vpc.network.id
  tags   = { Name = var.cluster_name }
}

resource "aws_route_table" "default" {
  vpc_id = aws_vpc.network.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.gateway.id
  }
  tags = { Name = var.cluster_name }
}

resource "aws_subnet" "public" {
  count = length(var.availability_zones)

  vpc_id                  = aws_vpc.network.id
  availability_zone       = var.availability_zones[count.index]
  cidr_block              = cidrsubnet(var.host_cidr, 4, count.index)
  map_public_ip_on_launch = true
  tags                    = { Name = "${var.cluster_name}-public-${count.index}" }
}

resource "aws_route_table_association" "public" {
  count = length(var.availability_zones)

  route_table_id = aws_route_table.default.id
  subnet_id      = aws_subnet.public[count.index].id
}
