"""The embedded cluster: a Kubernetes API emulator, a simulated helm-controller and scenarios."""
