# A VPC with one public subnet per availability zone. Hosts get public addresses so the
# provider reaches them over SSH; restrict `ssh_cidrs` to where terraform runs.

# The zones: the ones given, or every available zone of the region (no guess at names).
data "aws_availability_zones" "available" {
  count = var.availability_zones == null ? 1 : 0
  state = "available"
}

locals {
  zones = var.availability_zones != null ? var.availability_zones : data.aws_availability_zones.available[0].names
}

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
  count = length(local.zones)

  vpc_id                  = aws_vpc.network.id
  availability_zone       = local.zones[count.index]
  cidr_block              = cidrsubnet(var.host_cidr, 4, count.index)
  map_public_ip_on_launch = true
  tags                    = { Name = "${var.cluster_name}-public-${count.index}" }
}

resource "aws_route_table_association" "public" {
  count = length(local.zones)

  route_table_id = aws_route_table.default.id
  subnet_id      = aws_subnet.public[count.index].id
}
