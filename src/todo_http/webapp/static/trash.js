// trash
