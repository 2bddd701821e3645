{{ config(materialized='view') }}
with numbered as (
    select
        *,
        row_number() over (partition by district_id, id order by id) as copy_number
    from {{ source('clever', 'courses') }}
),

source as (
    -- An id served twice (within a page or across pages) keeps one row.
    select * from numbered where copy_number = 1
),

final as (
    select
        district_id,
        id as course_id,
        nullif(trim(name), '') as name,
        nullif(trim(number), '') as number
    from source
)

select * from final
