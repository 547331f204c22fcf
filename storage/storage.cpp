// placeholder until the storage layer lands
