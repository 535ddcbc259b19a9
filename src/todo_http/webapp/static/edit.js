// edit
