// A pod's view of the cluster network, for the lane's networking test (standard library only).
module selfhosted.dev/netcheck

go 1.22
