// messages
