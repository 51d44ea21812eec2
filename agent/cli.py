def main(): print("agent cli")
