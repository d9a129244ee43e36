"""Built-in upstream types and backend profiles."""
