"""A stand-in training script: reads EPOCHS, writes a result into /workspace."""
import os

epochs = int(os.environ.get("EPOCHS", "1"))
with open("/workspace/result.txt", "w") as f:
    f.write("trained for %d epochs\n" % epochs)
print("done:", epochs, "epochs")
