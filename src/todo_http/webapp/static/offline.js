// offline
