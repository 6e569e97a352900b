"""The decision engine's runtime: Faust agents that move bytes between Kafka and rules."""
