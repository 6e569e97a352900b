"""Operations: the infrastructure databus runs on (local broker, topics)."""
