"""Client of the Clearance Registry agent service (the contract lives in `contract.py`)."""
