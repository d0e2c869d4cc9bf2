-- Where the bot sends a coordinator the archives of the pathways they closed (an encrypted direct room).
CREATE TABLE archive_room (
    user_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL
);
