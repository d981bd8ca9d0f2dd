import type { Queryable } from "@gate/runtime";

export interface UserRow {
  id: number;
  user_uuid: string;
  name: string;
  email: string;
  age: number | null;
  gender: string | null;
  country: string | null;
  address: string | null;
  phone: string | null;
  registration_ts: Date;
  registered_at: Date;
}

export interface NewUser {
  userUuid: string;
  name: string;
  email: string;
  age: number | null;
  gender: string | null;
  country: string | null;
  address: string | null;
  phone: string | null;
  registrationTs: Date | null;
}

/** Fields UpdateUser may change; undefined leaves a field as it is. */
export type UserChanges = Partial<Omit<NewUser, "userUuid" | "registrationTs">>;

const columns =
  "id, user_uuid, name, email, age, gender, country, address, phone, registration_ts, registered_at";

/** Columns UpdateUser may set, in the order of their parameters. */
const changeable = ["name", "email", "age", "gender", "country", "address", "phone"] as const;

/** The users table's SQL. Every query names the schema-qualified table. */
export class UsersStore {
  readonly #table: string;

  constructor(schema: string) {
    this.#table = `"${schema}".users`;
  }

  async insert(db: Queryable, user: NewUser): Promise<UserRow> {
    const { rows } = await db.query<UserRow>(
      `INSERT INTO ${this.#table}
         (user_uuid, name, email, age, gender, country, address, phone, registration_ts)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, coalesce($9, now()))
       RETURNING ${columns}`,
      [
        user.userUuid,
        user.name,
        user.email,
        user.age,
        user.gender,
        user.country,
        user.address,
        user.phone,
        user.registrationTs,
      ],
    );
    return rows[0] as UserRow;
  }

  async get(db: Queryable, id: number): Promise<UserRow | undefined> {
    const { rows } = await db.query<UserRow>(
      `SELECT ${columns} FROM ${this.#table} WHERE id = $1`,
      [id],
    );
    return rows[0];
  }

  /** Users with an id above `afterId`, by id. */
  async list(db: Queryable, afterId: number, limit: number): Promise<UserRow[]> {
    const { rows } = await db.query<UserRow>(
      `SELECT ${columns} FROM ${this.#table} WHERE id > $1 ORDER BY id LIMIT $2`,
      [afterId, limit],
    );
    return rows;
  }

  /** The changed user, or undefined when there is none with that id. */
  async update(db: Queryable, id: number, changes: UserChanges): Promise<UserRow | undefined> {
    // Each column is set to its parameter when the caller gave one (a flag says so), so
    // one statement serves every combination of changed fields.
    const sets = changeable.map(
      (name, i) => `${name} = CASE WHEN $${2 * i + 2}::boolean THEN $${2 * i + 3} ELSE ${name} END`,
    );
    const params = changeable.flatMap((name) => [
      changes[name] !== undefined,
      changes[name] ?? null,
    ]);
    const { rows } = await db.query<UserRow>(
      `UPDATE ${this.#table} SET ${sets.join(", ")} WHERE id = $1 RETURNING ${columns}`,
      [id, ...params],
    );
    return rows[0];
  }

  /** True when a user was deleted. */
  async delete(db: Queryable, id: number): Promise<boolean> {
    const { rowCount } = await db.query(`DELETE FROM ${this.#table} WHERE id = $1`, [id]);
    return (rowCount ?? 0) > 0;
  }
}
