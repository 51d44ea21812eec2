"""The content-addressed model store and the model formats it accepts (checked without executing anything)."""
