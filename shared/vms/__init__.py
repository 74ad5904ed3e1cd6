"""Cloud VMS adapters behind one vendor-neutral interface (`base.VmsAdapter`)."""
